"""dataload."""
