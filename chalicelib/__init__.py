"""Everything shipped to Lambda besides app.py. Never imports chalice."""
