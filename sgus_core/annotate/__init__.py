"""Annotating a frame: ``strokes`` reads what the canvas drew, ``editing`` turns strokes into one
mask (fill, largest region, smooth, undo/redo), ``prompting`` turns a dragged box and clicks into a
prompt for the model, and ``saving`` chooses where an edit starts and saves mask, grades and status."""
