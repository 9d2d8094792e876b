"""Alembic migrations of the service database (run by ``crossmargin db upgrade``)."""
