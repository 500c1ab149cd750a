"""The book's plumbing, which the notebooks in ``book/notebooks`` call: what a page trains
and shows (``pages``), its figures and markdown tables (``plots``) and the Performance
page's benchmark records (``performance``)."""
