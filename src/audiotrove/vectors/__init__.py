"""Vectors: Parquet shards of embeddings (store), the per-(model, level) index with exact and
faiss IVF search (index), and the similarity views behind `similar`, `duplicates` and
`Collection.vectors()` (search).

For later steps (tags, maps, mosaics):
    from audiotrove.vectors.search import collection_vectors, similar, Similarity
    ids, matrix = collection_vectors(catalog, model="yamnet", level="unit")
    engine = Similarity(catalog, "yamnet", "unit"); engine.query(vector, 10)
"""
