"""Checks the names a Python example takes from a jsii-generated module against that module's source.

Usage: python3 check_names.py MODULE[,BASE_MODULE...] EXAMPLE.py...

MODULE is the generated package's __init__.py (dist-langs/python/src/<module>/__init__.py); the
BASE_MODULEs are other generated modules its classes extend (constructs), so that members inherited
from them are known. For each example, every name imported from MODULE must be a class of it; every
call of such a class, or of a static member of it, may pass only the keyword arguments that the
method declares; and `Class.member` and `variable.member` (a variable assigned a call of such a
class) must name a member of the class or of one of its bases. A class with a base outside the
given modules may have members this cannot see: those are not reported. Prints one line per
problem, `file:line: ...`, and exits 1 if there is any. It reads source only: nothing is imported
or run.
"""

import ast
import sys


class ModuleClass:
    def __init__(self, node: ast.ClassDef):
        self.name = node.name
        self.bases = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
        self.methods = {}
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.methods[item.name] = item


def parameters(fn: ast.FunctionDef) -> set:
    args = fn.args
    return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}


def accepts_any_keyword(fn: ast.FunctionDef) -> bool:
    return fn.args.kwarg is not None


class Module:
    def __init__(self, source: str, name: str, registry: dict):
        self.name = name
        self.registry = registry
        self.classes = {}
        self.aliases = {}  # `import constructs as _constructs_77d1e7e8`: alias -> module name
        tree = ast.parse(source)
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = ModuleClass(node)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = alias.name
        registry[name] = self

    def resolve(self, base: str):
        """The (module, class name) a base expression names, or None if it is outside the registry."""
        if "." not in base:
            return (self, base) if base in self.classes else None
        alias, _, name = base.rpartition(".")
        module = self.registry.get(self.aliases.get(alias, alias))
        return (module, name) if module is not None and name in module.classes else None

    def lineage(self, name: str):
        """The class and its bases; `complete` is False if a base is outside the registry."""
        seen, queue, complete = [], [(self, name)], True
        while queue:
            module, current = queue.pop(0)
            cls = module.classes[current]
            if cls in seen:
                continue
            seen.append(cls)
            for base in cls.bases:
                resolved = module.resolve(base)
                if resolved is not None:
                    queue.append(resolved)
                elif base != "object":
                    complete = False
        return seen, complete

    def member(self, class_name: str, member: str):
        classes, complete = self.lineage(class_name)
        for cls in classes:
            if member in cls.methods:
                return cls.methods[member], True
        return None, complete


def check(module: Module, path: str) -> list:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    problems = []
    imported = {}  # local name -> class name in the module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == module.name:
            for alias in node.names:
                if alias.name not in module.classes:
                    problems.append(f"{path}:{node.lineno}: {module.name} has no class {alias.name}")
                else:
                    imported[alias.asname or alias.name] = alias.name
    instances = {}  # variable -> class name, for `x = Class(...)`
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            cls = imported.get(node.value.func.id)
            if cls:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        instances[target.id] = cls

    def owner(expr):
        if isinstance(expr, ast.Name):
            return imported.get(expr.id) or instances.get(expr.id)
        return None

    def check_keywords(call: ast.Call, fn: ast.FunctionDef, what: str):
        if accepts_any_keyword(fn):
            return
        allowed = parameters(fn)
        for keyword in call.keywords:
            if keyword.arg is not None and keyword.arg not in allowed:
                problems.append(f"{path}:{call.lineno}: {what} takes no keyword argument {keyword.arg}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            cls = imported[node.func.id]
            init, _ = module.member(cls, "__init__")
            if init is not None:
                check_keywords(node, init, f"{cls}()")
        if isinstance(node, ast.Attribute):
            cls = owner(node.value)
            if cls is None:
                continue
            fn, complete = module.member(cls, node.attr)
            if fn is None and complete:
                problems.append(f"{path}:{node.lineno}: {cls} has no member {node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            cls = owner(node.func.value)
            if cls is None:
                continue
            fn, _ = module.member(cls, node.func.attr)
            if fn is not None:
                check_keywords(node, fn, f"{cls}.{node.func.attr}()")
    return problems


def main() -> int:
    modules, examples = sys.argv[1].split(","), sys.argv[2:]
    registry = {}
    loaded = []
    for module_path in modules:
        # .../src/<module>/__init__.py
        name = module_path.replace("\\", "/").split("/")[-2]
        loaded.append(Module(open(module_path, encoding="utf-8").read(), name, registry))
    problems = [p for example in examples for p in check(loaded[0], example)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
