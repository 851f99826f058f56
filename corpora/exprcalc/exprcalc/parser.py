"""Recursive-descent parser building an AST from tokens.

Grammar (lowest to highest precedence)::

    program    := statement (';' statement)*
    statement  := IDENT '=' expression
                | IDENT '(' params ')' '=' expression
                | expression
    expression := additive (compare_op additive)?
    additive   := term (('+' | '-') term)*
    term       := unary (('*' | '/' | '//' | '%') unary)*
    unary      := ('+' | '-') unary | power
    power      := postfix ('^' unary)?
    postfix    := primary '!'*
    primary    := NUMBER | IDENT | IDENT '(' args ')' | '(' expression ')'
"""

from __future__ import annotations

from .errors import ParseError
from .nodes import Assign, Binary, Call, FunctionDef, Node, Number, Program, Unary, Variable
from .tokens import Token, TokenKind, tokenize

_COMPARISONS = {
    TokenKind.EQ: "==",
    TokenKind.NE: "!=",
    TokenKind.LT: "<",
    TokenKind.LE: "<=",
    TokenKind.GT: ">",
    TokenKind.GE: ">=",
}
_ADDITIVE = {TokenKind.PLUS: "+", TokenKind.MINUS: "-"}
_MULTIPLICATIVE = {
    TokenKind.STAR: "*",
    TokenKind.SLASH: "/",
    TokenKind.DSLASH: "//",
    TokenKind.PERCENT: "%",
}


class Parser:
    """Parse a list of tokens into syntax tree nodes."""

    def __init__(self, tokens: list[Token]) -> None:
        if not tokens or tokens[-1].kind is not TokenKind.EOF:
            raise ValueError("token list must end with an EOF token")
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _peek_kind(self, offset: int = 1) -> TokenKind:
        index = min(self.index + offset, len(self.tokens) - 1)
        return self.tokens[index].kind

    def _advance(self) -> Token:
        token = self.current
        if token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def _check(self, *kinds: TokenKind) -> bool:
        return self.current.kind in kinds

    def _expect(self, kind: TokenKind, what: str) -> Token:
        if not self._check(kind):
            raise ParseError(f"expected {what} but found {self.current.describe()}",
                             self.current.position)
        return self._advance()

    def _unexpected(self) -> ParseError:
        token = self.current
        if token.kind is TokenKind.EOF:
            return ParseError("unexpected end of input", token.position)
        return ParseError(f"unexpected {token.describe()}", token.position)

    def parse_program(self) -> Program:
        """Parse a semicolon separated sequence of statements."""
        statements = []
        while True:
            while self._check(TokenKind.SEMI):
                self._advance()
            if self._check(TokenKind.EOF):
                break
            statements.append(self.parse_statement())
            if not self._check(TokenKind.SEMI, TokenKind.EOF):
                raise self._unexpected()
        return Program(tuple(statements), position=0)

    def parse_single(self) -> Node:
        """Parse exactly one statement that must span the whole input."""
        if self._check(TokenKind.EOF):
            raise ParseError("empty expression", self.current.position)
        node = self.parse_statement()
        if not self._check(TokenKind.EOF):
            raise self._unexpected()
        return node

    def parse_statement(self) -> Node:
        token = self.current
        if token.kind is TokenKind.IDENT and self._peek_kind() is TokenKind.ASSIGN:
            self._advance()
            self._advance()
            return Assign(token.text, self.parse_expression(), position=token.position)
        if token.kind is TokenKind.IDENT and self._peek_kind() is TokenKind.LPAREN:
            definition = self._try_function_definition()
            if definition is not None:
                return definition
        return self.parse_expression()

    def _try_function_definition(self) -> FunctionDef | None:
        start = self.index
        name_token = self._advance()
        self._advance()
        params: list[str] = []
        if not self._check(TokenKind.RPAREN):
            while True:
                if not self._check(TokenKind.IDENT):
                    self.index = start
                    return None
                params.append(self._advance().text)
                if not self._check(TokenKind.COMMA):
                    break
                self._advance()
        if not self._check(TokenKind.RPAREN) or self._peek_kind() is not TokenKind.ASSIGN:
            self.index = start
            return None
        self._advance()
        self._advance()
        if len(set(params)) != len(params):
            raise ParseError(f"duplicate parameter in definition of '{name_token.text}'",
                             name_token.position)
        body = self.parse_expression()
        return FunctionDef(name_token.text, tuple(params), body, position=name_token.position)

    def parse_expression(self) -> Node:
        left = self._additive()
        if self.current.kind in _COMPARISONS:
            op_token = self._advance()
            right = self._additive()
            if self.current.kind in _COMPARISONS:
                raise ParseError("comparisons cannot be chained", self.current.position)
            return Binary(_COMPARISONS[op_token.kind], left, right, position=op_token.position)
        return left

    def _additive(self) -> Node:
        node = self._term()
        while self.current.kind in _ADDITIVE:
            op_token = self._advance()
            right = self._term()
            node = Binary(_ADDITIVE[op_token.kind], node, right, position=op_token.position)
        return node

    def _term(self) -> Node:
        node = self._unary()
        while self.current.kind in _MULTIPLICATIVE:
            op_token = self._advance()
            right = self._unary()
            node = Binary(_MULTIPLICATIVE[op_token.kind], node, right, position=op_token.position)
        return node

    def _unary(self) -> Node:
        if self._check(TokenKind.PLUS, TokenKind.MINUS):
            op_token = self._advance()
            return Unary(op_token.text, self._unary(), position=op_token.position)
        return self._power()

    def _power(self) -> Node:
        base = self._postfix()
        if self._check(TokenKind.POW):
            op_token = self._advance()
            exponent = self._unary()
            return Binary("^", base, exponent, position=op_token.position)
        return base

    def _postfix(self) -> Node:
        node = self._primary()
        while self._check(TokenKind.BANG):
            op_token = self._advance()
            node = Unary("!", node, position=op_token.position)
        return node

    def _primary(self) -> Node:
        token = self.current
        if token.kind is TokenKind.NUMBER:
            self._advance()
            return Number(token.value, position=token.position)
        if token.kind is TokenKind.IDENT:
            self._advance()
            if not self._check(TokenKind.LPAREN):
                return Variable(token.text, position=token.position)
            self._advance()
            args: list[Node] = []
            if not self._check(TokenKind.RPAREN):
                args.append(self.parse_expression())
                while self._check(TokenKind.COMMA):
                    self._advance()
                    args.append(self.parse_expression())
            self._expect(TokenKind.RPAREN, "')' to close argument list")
            return Call(token.text, tuple(args), position=token.position)
        if token.kind is TokenKind.LPAREN:
            self._advance()
            inner = self.parse_expression()
            self._expect(TokenKind.RPAREN, "')'")
            return inner
        raise self._unexpected()


def parse(source: str) -> Node:
    """Parse a single statement or expression from *source*."""
    return Parser(tokenize(source)).parse_single()


def parse_program(source: str) -> Program:
    """Parse a semicolon separated program from *source*."""
    return Parser(tokenize(source)).parse_program()
