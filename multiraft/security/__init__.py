"""Who may talk to a store: CurveZMQ keys (`keys`) and the cluster's trust
table with the role of every trusted key (`trust`)."""
