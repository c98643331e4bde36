"""`donjon init` and `donjon setup`: tables, then ordered, repeatable, resumable steps."""
