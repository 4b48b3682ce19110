"""The document library: parsing, passages, the index, retrieval."""
