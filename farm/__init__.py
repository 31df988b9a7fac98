"""farm: a shared, queue-based container image build farm that reads Garden projects."""

__version__ = "0.1.0"
