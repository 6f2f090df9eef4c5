"""Views: what a page shows, assembled from the metrics (one module per page that needs assembly)."""
