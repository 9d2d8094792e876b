"""The live margin engine (``crossmargin serve``): ledger, working set, single-writer core, API.

Import the parts you need (``crossmargin.service.core``, ``crossmargin.service.api``): the
package itself imports nothing heavy, so the command line starts fast.
"""
