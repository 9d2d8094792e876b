"""Where collateral lives (issue #17): locations with a bridge haircut, finality, transfer
cost and state (:mod:`.schema`), the compiled view that turns located lots and transfers in
flight into rows of the one kernel (:mod:`.view`), transfers (:mod:`.transfers`) and their
health timeline (:mod:`.timeline`).

Nothing is imported here: :mod:`crossmargin.book.schema` imports :mod:`.schema`, and the
other modules import the book schema.
"""
