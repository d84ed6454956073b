# The seed's Flask receiver (shared/seed/000_6b327df4f7105383.txt, "Endpoint Example
# (Python/Flask)") as written there, with two changes only: its indentation, which the
# seed's text lost, is restored; and its host and credentials are this test's Herald's
# (read from the environment), with a main block that serves it on the test's port.
import os

from flask import Flask, request, jsonify
import requests

HERALD = os.environ["HERALD_URL"]
LOGIN = os.environ["HERALD_LOGIN"]
PASSWORD = os.environ["HERALD_PASSWORD"]

app = Flask(__name__)


@app.route('/webhook', methods=['POST'])
def handle_webhook():
    # Get webhook data
    data = request.json
    event_type = data.get('event')
    # Process by event type
    if event_type == 'ProcessStepChange':
        application_url = data.get('application', {}).get('_self')
        # Fetch complete details via API
        response = requests.get(
            f'{HERALD}{application_url}',
            auth=(LOGIN, PASSWORD)
        )
        application_details = response.json()
        # Your business logic here
        process_application_change(application_details)
    # Respond quickly
    return jsonify({'status': 'received'}), 200


def process_application_change(application):
    # Asynchronous processing
    pass


if __name__ == '__main__':
    app.run(host='127.0.0.1', port=int(os.environ['PORT']))
