"""`multiraft verify`: a Jepsen-style check of a cluster's promises."""
