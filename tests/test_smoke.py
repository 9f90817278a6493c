async def test_register_sends_a_verification_email_that_verifies(api, client, mailbox, run_tasks):
    account = await api.register("smoke@example.com")
    assert await run_tasks() >= 1
    [link] = [link for link in mailbox.links_to("smoke@example.com") if "verify-email" in link]
    response = await client.get(link.replace("http://testserver", ""))
    assert response.status_code == 200, response.text
    me = await client.get("/v1/users/me", headers=account.headers)
    assert me.json()["user"]["email_verified"] is True
