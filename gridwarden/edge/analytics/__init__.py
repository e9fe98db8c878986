"""Analytics: motion gate, detector (ONNX, region crops), tracking, zones and the dwell rules, per
camera. Pure functions of frames and media time; nothing here does I/O to the hub."""
