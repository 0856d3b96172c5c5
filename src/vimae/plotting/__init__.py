"""Pictures: matplotlib charts (`charts`) and image mosaics without matplotlib (`imagegrid`); each
a function of arrays in, a PNG file out."""
