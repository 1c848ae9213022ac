"""symdiff.models: model declarations from the lecture notes, built on symdiff's public API."""
