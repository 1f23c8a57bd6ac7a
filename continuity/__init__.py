"""Email continuity appliance: a standby mail stack that keeps mail flowing when Exchange fails."""

__all__ = ["__version__"]

__version__ = "0.1.0"
