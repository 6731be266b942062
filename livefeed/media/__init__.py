"""Uploaded images and audio on disk: checking and resizing them (images.py), and the
content-addressed files they become (files.py). Beside storage/ in the layers: storage is
Redis, this is the local file system; neither imports anything above them."""
