"""File contracts: one module per kind of file (scan, segmentation, dictionary, model directory,
specimen truth), each the only code that knows its layout, with paired write and read functions
and a version check on read (after the readers of ifes-apt-tc-data-modeling)."""
from .schema import check_schema, schema_name

__all__ = ["check_schema", "schema_name"]
