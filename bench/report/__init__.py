"""The benchmark report (scripts/report.py): results loading, one module per
group of sections and targets, and the document."""
