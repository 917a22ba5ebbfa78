"""ohbot index builder: knowledge/ → ingest → clean → segment → tokenise → embed → index."""
