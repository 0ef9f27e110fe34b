"""The accounts' HTTP endpoints: `/login` and `/register` (PROTOCOL.md), a token for each."""

from __future__ import annotations

from server.http.handler import ApiHandler


class LoginHandler(ApiHandler):
    async def post(self) -> None:
        username = self.param("username")
        password = self.param("password")
        assert username is not None and password is not None
        token = await self.ctx.accounts.login(username, password, self.request.remote_ip or "")
        self.reply({"code": 200, "token": token})


class RegisterHandler(ApiHandler):
    async def post(self) -> None:
        username = self.param("username")
        password = self.param("password")
        code = self.param("code")
        assert username is not None and password is not None and code is not None
        token = await self.ctx.accounts.register(
            username, password, code, self.request.remote_ip or ""
        )
        self.reply({"code": 200, "token": token})
