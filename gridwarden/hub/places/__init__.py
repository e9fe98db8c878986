"""Places: where cameras and cases are, and which area (patrol beat, estate grid) holds them."""
