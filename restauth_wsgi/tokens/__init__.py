"""API tokens that the service issues itself: their format, store and issuing."""
