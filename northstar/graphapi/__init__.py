"""The GraphQL API (``/graphql``, Strawberry): the modules' services as one typed graph, behind REST's auth,
gates and tenant transaction (docs/graphql.md)."""
