"""AAS Cores: one on the SDK (`press_core.py`), one written by hand with kafka-python
exactly as the AAS developer guide shows (`kafka_python_core.py`)."""
