"""Maps of a collection: embedding vectors laid out in 2-D (and a 1-D similarity order), put on
a grid, and clustered. layout.py (t-SNE / UMAP / PCA), grid.py (points to grid cells),
cluster.py (k-means), build.py (the `map` command's data function), store.py (where the map's
fields live), plot.py (the picture)."""
