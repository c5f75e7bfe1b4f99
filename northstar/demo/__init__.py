"""Demo data: what `northstar seed`, the tests, the benchmarks and a console tour show.

Nothing here runs in a request or a worker. It sits above the feature modules (it uses their services, as a client
would), so generated accounts of third-party services live here rather than in the connectors that read them.
"""
