"""The operators' API: /admin/… endpoints, the live dashboard feed, reports."""
