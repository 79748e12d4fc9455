"""scalesearch: search EfficientNet compound-scaling coefficients on your own data and hardware."""

__version__ = "0.1.0"
