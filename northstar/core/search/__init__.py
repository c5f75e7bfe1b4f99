"""One search across everything an organization holds: each module's manifest declares its ``SearchSource`` s (which
rows are documents, and how a row becomes one); core keeps the index (``core.search_documents``) in step with those
rows in the same transaction, and answers queries with ranking, typo tolerance, facets and snippets, filtered by
tenancy and by what the reader's role may read. See ``docs/search.md``."""
