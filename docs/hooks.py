"""mkdocs hook: the page of attribution methods is generated from the registry (as ``scatterxai explain
--help`` is), so that a new method needs no documentation edit."""

MARKER = "<!-- registry -->"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def methods_markdown() -> str:
    """One section per registered method: title, family, summary, and a table of its parameters."""
    from scatterxai.explain import REGISTRY, available_methods

    lines = []
    for name in available_methods():
        cls = REGISTRY[name]
        slow = "; slow (the pipeline explains a class-stratified subset)" if cls.slow else ""
        lines += [f"## {cls.title} (`{name}`)", "",
                  f"Family: {cls.family}{slow}.  Class: `{cls.__module__}.{cls.__qualname__}`.", "",
                  _cell(cls.summary), ""]
        if cls.context:
            lines += [f"Context taken from the model: {', '.join(f'`{c}`' for c in cls.context)}.", ""]
        if cls.parameters:
            lines += ["| parameter | type | default | command line | what it does |", "|---|---|---|---|---|"]
            for p in cls.parameters:
                kind = f"one of {', '.join(p.choices)}" if p.kind == "choice" else p.kind
                if p.low is not None:
                    kind += f" {'>' if p.low_open else '≥'} {p.low:g}"
                lines.append(f"| `{p.name}` | {_cell(kind)} | `{p.default!r}` | "
                             f"{f'`{p.flag}`' if p.flag else '–'} | {_cell(p.help)} |")
            lines.append("")
        else:
            lines += ["No parameters.", ""]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        return markdown.replace(MARKER, methods_markdown())
    return markdown
