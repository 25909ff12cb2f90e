"""A published port, reached from the test process wherever the engine runs."""

import urllib.request

from pytest_dockernet import Listening

SERVE = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"


def test_the_test_process_reaches_a_published_port(dockernet):
    web = dockernet.container(
        "web", command=["sh", "-c", SERVE], ports={80: None}, ready=Listening(80)
    )

    # ("127.0.0.1", 32768) on a local engine, ("docker", 32768) with
    # DOCKER_HOST=tcp://docker:2375
    endpoint = web.endpoint(80)
    with urllib.request.urlopen(f"http://{endpoint}/", timeout=5) as response:
        assert response.read() == b"hello\n"
