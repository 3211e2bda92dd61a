"""`apt-cnn export`: a scan's reconstruction, ranging and results in community formats (NeXus
NXapm through pynxtools, an optional extra): nexus.py fills the template, run.py is the stage."""
