"""APT file formats: ion positions + m/n (POS, ePOS, APT, CSV) and range files (RRNG, RNG).

Reading goes through ifes-apt-tc-data-modeling where it can; our own memory-mapped reader serves
byte-range reads of POS/ePOS on many ranks. Every failure is an `InputError` naming the file.
"""
from .ions import Ions, read_ions, count_ions, ion_record_range
from .posfile import pos_writer, write_pos
from .ranges import RangeTable, read_ranges, write_rrng

__all__ = ["Ions", "read_ions", "count_ions", "ion_record_range", "pos_writer", "write_pos",
           "RangeTable", "read_ranges", "write_rrng"]
