"""The pipeline forecast: what the open deals are likely to bring by the month's end."""
