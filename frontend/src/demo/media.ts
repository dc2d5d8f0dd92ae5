/**
 * Camera and microphone if the person allows them. A call works without media
 * (chat still flows), so every failure here means "no media", never an error.
 */
export async function getLocalMedia(): Promise<MediaStream | undefined> {
  const devices = typeof navigator === 'undefined' ? undefined : navigator.mediaDevices;
  if (!devices?.getUserMedia) return undefined;
  const attempts: MediaStreamConstraints[] = [
    { audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } } },
    { audio: true, video: false },
    { audio: false, video: true },
  ];
  for (const constraints of attempts) {
    try {
      return await devices.getUserMedia(constraints);
    } catch (error) {
      // Refused outright: asking again for less would only nag.
      if (error instanceof DOMException && error.name === 'NotAllowedError') return undefined;
    }
  }
  return undefined;
}
