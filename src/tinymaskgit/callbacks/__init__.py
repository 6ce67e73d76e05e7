"""Lightning callbacks: the side effects of training (image grids on disk and in the logger)."""
