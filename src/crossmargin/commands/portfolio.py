"""Portfolio-margin file commands: ``import-derive`` and ``portfolio-margin``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crossmargin.commands.common import (
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
)
from crossmargin.errors import InputError


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        "import-derive", epilog=examples("crossmargin import-derive case.json --out case.yaml")
    )
    @one_line_errors
    def import_derive(
        case: Annotated[
            Path,
            typer.Argument(metavar="FILE", help="A Derive PM2 case (JSON).", show_default=False),
        ],
        out: Annotated[
            Path | None,
            typer.Option("--out", metavar="FILE", help="Write the YAML here instead of stdout."),
        ] = None,
    ) -> None:
        """Convert a Derive PM2 case into a portfolio-margin file (YAML).

        The file (portfolio + profile) runs with 'crossmargin portfolio-margin'; it also carries
        our result, the case's reference MM/IM and every figure that differs ('mismatches',
        empty when all match)."""
        import yaml

        from crossmargin.portfolio import import_derive as convert

        text = yaml.safe_dump(convert(case), sort_keys=False)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text)
            console.print(f"written to {out}")

    @app.command("portfolio-margin", epilog=examples("crossmargin portfolio-margin case.yaml"))
    @one_line_errors
    def portfolio_margin_command(
        file: Annotated[
            Path,
            typer.Argument(
                metavar="FILE",
                help="YAML/JSON with 'portfolio' and 'profile' (a name or a full profile).",
                show_default=False,
            ),
        ],
        as_json: JsonOpt = False,
    ) -> None:
        """Scenario-grid margin of one portfolio-margin file (e.g. from import-derive)."""
        from crossmargin.book.io import read_structured
        from crossmargin.portfolio import PortfolioSpec, Profile, get_profile, portfolio_margin
        from crossmargin.report import portfolio_summary_table

        data = read_structured(file)
        if not isinstance(data, dict) or "portfolio" not in data:
            raise InputError("portfolio", None, f"{file}: expected a mapping with 'portfolio'")
        raw_profile = data.get("profile", "generic")
        profile = (
            get_profile(raw_profile)
            if isinstance(raw_profile, str)
            else Profile.from_data(raw_profile)
        )
        result = portfolio_margin(
            PortfolioSpec.from_data(data["portfolio"]).to_portfolio(), profile
        )
        if as_json:
            emit_json(result.to_dict(scenarios=True))
            return
        console.print(portfolio_summary_table(result))
