"""Which table columns each output column of a SELECT is computed from, read off the statement
itself: the column lineage shown for Gold cannot drift from the SQL that builds Gold."""

from __future__ import annotations

from sqlalchemy import Column, ColumnElement, Select, Table
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause


def column_sources(statement: Select) -> dict[str, list[Column]]:
    """Output column name -> the table columns its value is computed from, sorted by address.

    Columns of subqueries are followed down to the tables under them. `count(*)` counts the rows
    of the tables it reads, so it is taken to depend on their keys. A column computed from no
    table (a bound value such as `computed_at`) maps to an empty list.
    """
    return {
        column.name: sorted(
            _sources(column, statement), key=lambda c: (str(c.table.schema), c.table.name, c.name)
        )
        for column in statement.selected_columns
    }


def _sources(expression: ColumnElement, statement: Select) -> set[Column]:
    found: set[Column] = set()
    for element in visitors.iterate(expression):
        if not isinstance(element, ColumnClause):
            continue
        source = element.table
        if isinstance(source, Table):
            found.add(source.c[element.name])
        elif source is not None:
            inner = getattr(source, "element", None)  # what a subquery or alias wraps
            if isinstance(inner, Table):
                found.add(inner.c[element.name])
            elif isinstance(inner, Select):
                found |= _sources(inner.selected_columns[element.name], inner)
            else:
                raise ValueError(f"cannot trace {element} through {source!r}")
        elif element.name == "*":
            for table in statement.get_final_froms():
                if not isinstance(table, Table):
                    raise ValueError(f"cannot trace count(*) over {table!r}")
                found.update(table.primary_key.columns)
        else:
            raise ValueError(f"column {element.name!r} belongs to no table")
    return found
