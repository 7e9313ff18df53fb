"""Historical import path (apssh 0.27): ``YamlLoader``."""

from .loader import ScenarioError, YamlLoader

__all__ = ["ScenarioError", "YamlLoader"]
