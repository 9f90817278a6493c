async def test_register_sends_a_verification_email_that_verifies(api, client, mailbox, run_tasks):
    account = await api.register("smoke@example.com")
    assert await run_tasks() >= 1
    [link] = [link for link in mailbox.links_to("smoke@example.com") if "verify-email" in link]
    response = await client.get(link.replace("http://testserver", ""))
    assert response.status_code == 200, response.text
    me = await client.get("/v1/users/me", headers=account.headers)
    assert me.json()["user"]["email_verified"] is True


async def test_an_app_that_stops_gives_back_what_it_froze(settings):
    """The lifespan moves what start-up built out of the cyclic collector's sight (gc.freeze); when the app
    stops, that goes back, so a process that starts and stops apps (each test does) does not keep every one."""
    import gc

    from backplane.app import create_app

    gc.unfreeze()
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
