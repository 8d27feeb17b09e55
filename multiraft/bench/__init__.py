"""Load generation for `multiraft bench`: workloads, latency histograms,
worker processes, a throwaway local cluster, and the report.

Kept out of the client and store packages so that benchmarking code never
ships in the request path.
"""
