"""The analysis layer: statements -> dependency graph -> slice.

No IPython here: :mod:`~lineapy_ext.analysis.statements` reads ASTs,
:mod:`~lineapy_ext.analysis.graph` builds the session's dependency graph from
captured cells, :mod:`~lineapy_ext.analysis.slicer` cuts and writes slices.
"""

from lineapy_ext.analysis.graph import DependencyGraph, Node
from lineapy_ext.analysis.slicer import SliceResult, slice_graph
from lineapy_ext.analysis.statements import StatementFacts, analyze

__all__ = ["DependencyGraph", "Node", "SliceResult", "StatementFacts", "analyze", "slice_graph"]
