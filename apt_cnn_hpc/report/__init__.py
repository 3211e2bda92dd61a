"""`apt-cnn report`: figures, summary.json and index.html of a segmented scan."""
