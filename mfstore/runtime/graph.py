"""Parse a FlowSpec class into a graph and check it before anything runs (Metaflow's
``graph.py`` + ``lint.py``); produce the ``_graph_info`` artifact."""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
from typing import Any

from mfstore.exception import FlowGraphError

#: The artifact a ``num_parallel`` split iterates over (Metaflow's name).
PARALLEL_VAR = "_parallel_ubf_iter"


def _deindent(doc: str | None) -> str:
    return textwrap.dedent(doc).strip() if doc else ""


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except Exception:
        return None


class DAGNode:
    """One step."""

    def __init__(
        self, name: str, func: Any, func_ast: ast.FunctionDef, source_file: str, lineno: int
    ) -> None:
        self.name = name
        self.func = func
        self.source_file = source_file
        self.func_lineno = lineno + func_ast.lineno - 1
        self.decorators = list(getattr(func, "decorators", []))
        self.doc = _deindent(func.__doc__)
        self.is_start_step = bool(getattr(func, "is_start_step", False))
        self.is_end_step = bool(getattr(func, "is_end_step", False))
        self.type: str | None = None
        self.out_funcs: list[str] = []
        self.has_tail_next = False
        self.invalid_tail_next = False
        self.tail_next_lineno = self.func_lineno
        self.num_args = len(func_ast.args.args)
        self.foreach_param: str | None = None
        self.parallel_foreach = False
        self.num_parallel: Any = 0
        self.switch_cases: dict[Any, str] = {}
        self.condition: str | None = None
        self.parallel_step = any(
            getattr(d, "name", None) == "parallel" for d in getattr(func, "decorators", [])
        )
        self.in_funcs: list[str] = []
        self.split_parents: list[str] = []
        self.split_branches: list[str] = []
        self.matching_join: str | None = None
        self._parse(func_ast, lineno)

    def _parse(self, func_ast: ast.FunctionDef, lineno: int) -> None:
        tail = func_ast.body[-1]
        if not isinstance(tail, ast.Expr) or not isinstance(tail.value, ast.Call):
            return
        call = tail.value
        if not (
            isinstance(call.func, ast.Attribute)
            and call.func.attr == "next"
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "self"
        ):
            return
        self.has_tail_next = True
        self.invalid_tail_next = True
        self.tail_next_lineno = lineno + tail.lineno - 1
        if (
            len(call.args) == 1
            and isinstance(call.args[0], ast.Dict)
            and any(k.arg == "condition" for k in call.keywords)
        ):
            self._parse_switch(call)
            return
        if not all(
            isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "self"
            for a in call.args
        ):
            return
        self.out_funcs = [a.attr for a in call.args]  # type: ignore[attr-defined]
        keywords = {k.arg: _literal(k.value) for k in call.keywords}
        if len(keywords) == 1 and "foreach" in keywords:
            self.type = "foreach"
            if len(self.out_funcs) == 1 and isinstance(keywords["foreach"], str):
                self.foreach_param = keywords["foreach"]
                self.invalid_tail_next = False
        elif len(keywords) == 1 and "num_parallel" in keywords:
            # @parallel: num_parallel tasks of the next step, like a foreach over node indices
            self.type = "foreach"
            self.parallel_foreach = True
            self.num_parallel = keywords["num_parallel"]
            if len(self.out_funcs) == 1:
                self.foreach_param = PARALLEL_VAR
                self.invalid_tail_next = False
        elif not keywords:
            if len(self.out_funcs) > 1:
                self.type = "split"
                self.invalid_tail_next = False
            elif len(self.out_funcs) == 1:
                self.type = "join" if self.num_args > 1 else "linear"
                self.invalid_tail_next = False

    def _parse_switch(self, call: ast.Call) -> None:
        """``self.next({"a": self.x, ...}, condition="attr")``: Metaflow's switch. Keys are
        literals or ``self.config.key`` (recorded as ``config:config.key``)."""
        cases: dict[Any, str] = {}
        dict_node = call.args[0]
        assert isinstance(dict_node, ast.Dict)
        for key, value in zip(dict_node.keys, dict_node.values, strict=True):
            if isinstance(key, ast.Constant):
                case_key: Any = key.value
            elif (
                isinstance(key, ast.Attribute)
                and isinstance(key.value, ast.Attribute)
                and isinstance(key.value.value, ast.Name)
                and key.value.value.id == "self"
            ):
                case_key = f"config:{key.value.attr}.{key.attr}"
            else:
                return
            if not (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id == "self"
            ):
                return
            cases[case_key] = value.attr
        condition = next((_literal(k.value) for k in call.keywords if k.arg == "condition"), None)
        if cases and isinstance(condition, str):
            self.type = "split-switch"
            self.condition = condition
            self.switch_cases = cases
            self.out_funcs = list(cases.values())
            self.invalid_tail_next = False

    @property
    def is_recursive(self) -> bool:
        """A switch step that can transition to itself (a loop, as Metaflow allows)."""
        return self.type == "split-switch" and self.name in self.out_funcs

    @property
    def info_type(self) -> str:
        if self.type == "foreach" and self.parallel_foreach:
            return "split-parallel"
        return {"split": "split-static", "foreach": "split-foreach"}.get(
            self.type or "", self.type or "unknown"
        )


class FlowGraph:
    """The steps of a flow class, with types, edges and split/join matching."""

    def __init__(self, flow_cls: type) -> None:
        self.name = flow_cls.__name__
        self.doc = _deindent(flow_cls.__doc__)
        self.nodes: dict[str, DAGNode] = {}
        for element in dir(flow_cls):
            func = getattr(flow_cls, element, None)
            if callable(func) and getattr(func, "is_step", False):
                source_file = inspect.getsourcefile(func) or inspect.getfile(func)
                lines, lineno = inspect.getsourcelines(func)
                func_ast = ast.parse(textwrap.dedent("".join(lines))).body[0]
                assert isinstance(func_ast, (ast.FunctionDef, ast.AsyncFunctionDef))
                self.nodes[element] = DAGNode(element, func, func_ast, source_file, lineno)  # type: ignore[arg-type]
        self.start_step = self._resolve("is_start_step", "start")
        self.end_step = self._resolve("is_end_step", "end")
        if self.end_step in self.nodes:
            self.nodes[self.end_step].type = "end"
        if self.start_step in self.nodes and self.start_step != self.end_step:
            node = self.nodes[self.start_step]
            if node.type in (None, "linear"):
                node.type = "start"
        self.sorted_nodes: list[str] = []
        self._traverse()

    def _resolve(self, attr: str, fallback: str) -> str | None:
        marked = [n for n, node in self.nodes.items() if getattr(node, attr)]
        if len(marked) > 1:
            raise FlowGraphError(
                "Only one step can be marked with @step({}=True); found {}.".format(
                    attr[3:-5], ", ".join(f"*{m}*" for m in sorted(marked))
                )
            )
        if marked:
            return marked[0]
        return fallback if fallback in self.nodes else None

    def _traverse(self) -> None:
        in_funcs: dict[str, set[str]] = {n: set() for n in self.nodes}

        def traverse(
            node: DAGNode, seen: list[str], split_parents: list[str], split_branches: list[str]
        ) -> None:
            add_branch = False
            if node.name in self.sorted_nodes:
                self.sorted_nodes.remove(node.name)
            self.sorted_nodes.append(node.name)
            if node.type in ("split", "foreach"):
                node.split_parents = split_parents
                node.split_branches = split_branches
                add_branch = True
                split_parents = [*split_parents, node.name]
            elif node.type == "split-switch":
                # a switch runs one of its branches: no new split level, no join
                node.split_parents = split_parents
                node.split_branches = split_branches
            elif node.type == "join":
                if split_parents:
                    self.nodes[split_parents[-1]].matching_join = node.name
                    node.split_parents = split_parents
                    node.split_branches = split_branches[:-1]
                    split_parents = split_parents[:-1]
                    split_branches = split_branches[:-1]
            else:
                node.split_parents = split_parents
                node.split_branches = split_branches
            for n in node.out_funcs:
                if n not in seen and n in self.nodes:
                    in_funcs[n].add(node.name)
                    traverse(
                        self.nodes[n],
                        [*seen, n],
                        split_parents,
                        split_branches + ([n] if add_branch else []),
                    )

        if self.start_step in self.nodes:
            traverse(self.nodes[self.start_step], [], [], [])
        for name, node in self.nodes.items():
            node.in_funcs = sorted(in_funcs[name])

    def __getitem__(self, name: str) -> DAGNode:
        return self.nodes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self) -> Any:
        return iter(self.nodes.values())

    # -- validation (Metaflow's lint.py messages) --------------------------------

    def check(self) -> None:
        """Raise ``FlowGraphError`` naming the step and the problem, or return."""
        if not self.nodes:
            raise FlowGraphError("The flow has no steps: decorate methods with @step.")
        if self.start_step is None:
            raise FlowGraphError("Add a step called *start* (the entry point of the flow).")
        if self.end_step is None:
            raise FlowGraphError("Add a step called *end* (the last step of the flow).")
        for node in self:
            if re.search("[^a-z0-9_]", node.name) or node.name[0] == "_":
                raise self._err(
                    f"Step *{node.name}* has an invalid name. Only lowercase ascii characters, underscores, "
                    "and digits are allowed.",
                    node,
                )
            if node.name in (
                "name",
                "next",
                "input",
                "index",
                "cmd",
                "foreach_stack",
                "merge_artifacts",
            ):
                raise self._err(
                    f"Step name *{node.name}* is a reserved word. Choose another name for the step.",
                    node,
                )
        if self.nodes[self.end_step].num_args > 1:
            raise self._err(
                f"The end step *{self.end_step}* can not be a join step.", self.nodes[self.end_step]
            )
        for node in self:
            if node.num_args > 2:
                raise self._err(
                    f"Step {node.name} has too many arguments. Normal steps take only 'self' as an argument. "
                    "Join steps take 'self' and 'inputs'.",
                    node,
                )
            if node.num_args == 2 and node.type not in ("join",) and node.type != "end":
                raise self._err(
                    f"Step *{node.name}* is both a join step (it takes an extra argument) and a split step "
                    "(it transitions to multiple steps). This is not allowed. Add a new step so that "
                    "split and join become separate steps.",
                    node,
                )
            if node.num_args == 0:
                raise self._err(f"Step *{node.name}* is missing the 'self' argument.", node)
        for node in self:
            if node.type != "end" and not node.has_tail_next:
                raise self._err(
                    f"Step *{node.name}* is missing a self.next() transition to the next step. Add a self.next() "
                    "as the last line in the function.",
                    node,
                )
            if node.type == "end" and node.has_tail_next:
                raise self._err(
                    f"Step *{node.name}* is the end step but it has a self.next() transition: the end step "
                    "must not call self.next().",
                    node,
                    node.tail_next_lineno,
                )
        for node in self:
            if node.type != "end" and node.invalid_tail_next:
                raise self._err(
                    f"Step *{node.name}* specifies an invalid self.next() transition. Make sure the self.next() "
                    "expression matches with one of the supported transition types:\n"
                    "  - Linear: self.next(self.step_name)\n"
                    "  - Fan-out: self.next(self.step1, self.step2, ...)\n"
                    "  - Foreach: self.next(self.step, foreach='variable')\n"
                    "  - Switch: self.next({\"key\": self.step, ...}, condition='variable')\n\n"
                    "For switch statements, keys must be string literals, numbers or config "
                    "expressions (self.config.key_name), not variables.",
                    node,
                    node.tail_next_lineno,
                )
        for node in self:
            unknown = [n for n in node.out_funcs if n not in self]
            if unknown:
                raise self._err(
                    f"Step *{node.name}* specifies a self.next() transition to an unknown step, *{unknown[0]}*.",
                    node,
                    node.tail_next_lineno,
                )
        if self.nodes[self.start_step].in_funcs:
            raise self._err(
                "The start step *{}* can not have incoming transitions (from *{}*).".format(
                    self.start_step, ", ".join(self.nodes[self.start_step].in_funcs)
                ),
                self.nodes[self.start_step],
            )
        self._check_switches()
        self._check_acyclic()
        seen = {self.start_step}
        stack = [self.start_step]
        while stack:
            for n in self.nodes[stack.pop()].out_funcs:
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        orphans = sorted(set(self.nodes) - seen)
        if orphans:
            node = self.nodes[orphans[0]]
            raise self._err(
                f"Step *{node.name}* is unreachable from the entry step *{self.start_step}*. "
                f"Add self.next(self.{node.name}) in another "
                f"step or remove *{node.name}*.",
                node,
            )
        self._check_split_join_balance()
        self._check_ambiguous_joins()

    def _err(self, msg: str, node: DAGNode, lineno: int | None = None) -> FlowGraphError:
        line = node.func_lineno if lineno is None else lineno
        return FlowGraphError(f"{msg} ({os.path.basename(node.source_file)} line {line})")

    def _check_switches(self) -> None:
        for node in self:
            if node.type != "split-switch":
                continue
            if len(node.out_funcs) < 2:
                raise self._err(
                    f"Step *{node.name}* is a switch split but defines {len(node.out_funcs)} "
                    "transitions. Switch splits must define at least 2 transitions.",
                    node,
                )

    def _check_ambiguous_joins(self) -> None:
        for node in self:
            if node.type != "join":
                continue
            parents = [p for p in node.in_funcs if self.nodes[p].type == "split-switch"]
            if parents:
                raise self._err(
                    "A conditional path cannot lead directly to a join step.\n"
                    "In your conditional step(s) {}, one or more of the possible paths transition "
                    "directly to the join step *{}*.\nAs a workaround, please introduce an "
                    "intermediate, unconditional step on that specific path before joining.".format(
                        ", ".join(f"*{p}*" for p in parents), node.name
                    ),
                    node,
                )

    def _check_acyclic(self) -> None:
        def check_path(node: DAGNode, seen: list[str]) -> None:
            for n in node.out_funcs:
                if node.type == "split-switch" and n == node.name:
                    continue  # a recursive switch step: Metaflow's one kind of loop
                if n in seen:
                    raise self._err(
                        "There is a loop in your flow: *{}*. Break the loop by fixing self.next() "
                        "transitions.".format("->".join([*seen, n])),
                        node,
                        node.tail_next_lineno,
                    )
                check_path(self.nodes[n], [*seen, n])

        for node in self:  # from every step, as Metaflow's lint does (same path named)
            check_path(node, [])

    def _check_split_join_balance(self) -> None:
        def traverse(node: DAGNode, split_stack: list[tuple[str, list[str]]]) -> None:
            new_stack = split_stack
            if node.type in ("split", "foreach"):
                new_stack = [*split_stack, (node.name, node.out_funcs)]
            elif node.type == "split-switch":
                pass  # each branch continues with the same split stack
            elif node.type == "end":
                if split_stack:
                    raise self._err(
                        "The terminal step *{}* was reached before a split started at step(s) *{}* "
                        "were joined. Add a join step before *{}*.".format(
                            self.end_step, ", ".join(split_stack[-1][1]), self.end_step
                        ),
                        node,
                    )
            elif node.type == "join":
                if not split_stack:
                    raise self._err(
                        f"Step *{node.name}* seems like a join step (it takes an extra input argument) but it is "
                        "not preceded by a split. Ensure that there is a matching split for every join.",
                        node,
                    )
                roots = split_stack[-1][1]
                new_stack = split_stack[:-1]
                resolved = {
                    self.nodes[n].split_branches[-1]
                    for n in node.in_funcs
                    if self.nodes[n].split_branches
                }
                if resolved ^ set(roots):
                    raise self._err(
                        "Step *{}* seems like a join step (it takes an extra input argument) but an "
                        "incorrect number of steps (*{}*) lead to it. This join was expecting {} incoming "
                        "paths, starting from split step(s) *{}*.".format(
                            node.name, ", ".join(sorted(resolved)), len(roots), ", ".join(roots)
                        ),
                        node,
                    )

                def parents(n: str) -> tuple[str, ...]:
                    p = self.nodes[n]
                    return tuple(p.split_parents[:-1] if p.type == "join" else p.split_parents)

                if len({parents(n) for n in node.in_funcs}) > 1:
                    raise self._err(
                        f"Step *{node.name}* joins steps from unrelated splits. Ensure that there is a matching "
                        "join for every split.",
                        node,
                    )
            for n in node.out_funcs:
                if node.type == "split-switch" and n == node.name:
                    continue
                traverse(self.nodes[n], new_stack)

        # Switch branches may meet again in a plain step (only one of them ran).
        has_switch = any(n.type == "split-switch" for n in self)
        for node in self:
            if node.type in ("linear", "start") and len(node.in_funcs) > 1 and not has_switch:
                raise self._err(
                    "Step *{}* has more than one incoming transition (from *{}*) but it is not a join "
                    "step: add an 'inputs' argument (def {}(self, inputs)) to join the branches.".format(
                        node.name, ", ".join(node.in_funcs), node.name
                    ),
                    node,
                )
        assert self.start_step is not None
        traverse(self.nodes[self.start_step], [])

    # -- _graph_info -------------------------------------------------------------

    def output_steps(self) -> tuple[dict[str, Any], list[Any]]:
        steps_info: dict[str, Any] = {}

        def node_to_dict(node: DAGNode) -> dict[str, Any]:
            d: dict[str, Any] = {
                "name": node.name,
                "type": node.info_type,
                "line": node.func_lineno,
                "source_file": node.source_file,
                "doc": node.doc,
                "decorators": [deco.to_info() for deco in node.decorators],
                "next": list(node.out_funcs),
                "node_info": {},
            }
            if d["type"] == "split-foreach":
                d["foreach_artifact"] = node.foreach_param
            elif d["type"] == "split-parallel":
                d["num_parallel"] = node.num_parallel
            elif d["type"] == "split-switch":
                d["condition"] = node.condition
                d["switch_cases"] = dict(node.switch_cases)
            if node.matching_join:
                d["matching_join"] = node.matching_join
            return d

        def populate_block(start: str, end: str | None) -> list[Any]:
            out: list[Any] = []
            cur: str | None = start
            while cur != end and cur is not None:
                node = self.nodes[cur]
                steps_info[cur] = node_to_dict(node)
                out.append(cur)
                if node.info_type in ("split-static", "split-foreach"):
                    out.append([populate_block(s, node.matching_join) for s in node.out_funcs])
                    cur = node.matching_join
                elif node.info_type == "split-switch":
                    out.append([populate_block(s, end) for s in node.out_funcs if s != cur])
                    cur = end
                elif node.out_funcs:
                    cur = node.out_funcs[0]
                else:
                    break
            return out

        assert self.start_step is not None and self.end_step is not None
        structure = (
            []
            if self.start_step == self.end_step
            else populate_block(self.start_step, self.end_step)
        )
        steps_info[self.end_step] = node_to_dict(self.nodes[self.end_step])
        structure.append(self.end_step)
        return steps_info, structure

    def graph_info(
        self, parameters: list[dict[str, str]], constants: list[dict[str, str]]
    ) -> dict[str, Any]:
        steps, structure = self.output_steps()
        return {
            "file": os.path.basename(os.path.abspath(sys.argv[0])),
            "start_step": self.start_step,
            "end_step": self.end_step,
            "parameters": parameters,
            "constants": constants,
            "steps": steps,
            "graph_structure": structure,
            "doc": self.doc,
            "decorators": [],
            "extensions": {"installed": {}},
        }

    def __str__(self) -> str:
        out = []
        for name in self.sorted_nodes:
            node = self.nodes[name]
            out.append("Step *{}*{}".format(name, f" ({node.info_type})"))
            if node.doc:
                out.append("    " + node.doc.replace("\n", "\n    "))
            if node.out_funcs:
                out.append("    => {}".format(", ".join(node.out_funcs)))
            out.append("")
        return "\n".join(out)
