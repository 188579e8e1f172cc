"""Recipes: one command each that rebuilds a shipped model end to end (train, calibrate, export, evaluate)."""
