"""Tests of the message bus (shopfloor.messaging)."""
