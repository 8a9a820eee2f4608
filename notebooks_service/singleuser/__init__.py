"""What runs inside a user's single-user server (an image installs ``notebooks-service[singleuser]``).

Nothing here is imported by the service or by the Hub."""
