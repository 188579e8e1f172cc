"""The window's widgets, one a module. They only paint what they are given; none computes anything heavy."""

from app.widgets.banner import Banner, BannerStack
from app.widgets.heads_view import HeadsView
from app.widgets.probability_panel import ProbabilityPanel
from app.widgets.settings_dialog import SettingsDialog
from app.widgets.style import bgr_to_qimage, dark_palette, qcolor
from app.widgets.timeline_plot import TimelinePlot
from app.widgets.video_view import VideoView

__all__ = ["Banner", "BannerStack", "HeadsView", "ProbabilityPanel", "SettingsDialog", "TimelinePlot", "VideoView", "bgr_to_qimage",
           "dark_palette", "qcolor"]
